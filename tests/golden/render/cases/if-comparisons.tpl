{% if 2 > 1 and 1 <= 1 and 3 >= 2.5 and 1 != 2 and 1 <> 2 and not (1 > 2) %}yes{% endif %} {% if "10" > 9 %}num{% endif %} {% if 1 == 1.0 %}same{% else %}typed{% endif %}
