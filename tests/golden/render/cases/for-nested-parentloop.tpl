{% for a in "ab" %}{% for b in "xy" %}{{ forloop.Parentloop.Counter }}{{ a }}{{ forloop.Counter }}{{ b }} {% endfor %}{% endfor %}
