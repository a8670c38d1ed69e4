{% if container.name %}
name
