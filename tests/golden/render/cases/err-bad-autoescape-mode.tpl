{% autoescape yes %}x{% endautoescape %}
