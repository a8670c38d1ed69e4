{% autoescape on %}{{ config_get("user.html", "") }}{% autoescape off %} {{ config_get("user.html", "") }}{% endautoescape %}{% endautoescape %}
