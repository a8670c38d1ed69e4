{% endif %}
