{% if a b %}x{% endif %}
