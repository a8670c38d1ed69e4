{% for k, v in config sorted %}{{ k }}={{ v|length }};{% endfor %}
{% for name, d in devices sorted %}{{ name }}:{{ d.type }} {% endfor %}
