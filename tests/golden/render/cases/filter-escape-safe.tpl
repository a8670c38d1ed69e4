{% autoescape on %}{{ config_get("user.html", "") }} {{ "<i>"|safe }} {{ "<i>"|escape }} {{ config_get("user.html", "")|safe|upper }} {% firstof "<x>" %}{% endautoescape %}
