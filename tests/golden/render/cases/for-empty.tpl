{% for x in nosuch %}{{ x }}{% empty %}nothing{% endfor %} {% for x in "" %}x{% empty %}empty string{% endfor %} {% for x in 3 %}x{% empty %}not iterable{% endfor %}
