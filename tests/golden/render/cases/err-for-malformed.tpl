{% for in config %}x{% endfor %}
