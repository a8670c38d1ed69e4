{% if a %}x{% else b %}y{% endif %}
