{% for n in "0123"|make_list %}{% if n == "0" %}zero{% elif n == "1" %}one{% elif n in "23" and not n == "3" %}two{% else %}other{% endif %};{% endfor %}
