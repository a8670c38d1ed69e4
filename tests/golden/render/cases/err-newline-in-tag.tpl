{% if
 true %}x{% endif %}
