{% if "eth0" in devices %}has-eth0{% endif %} {% if "nic" in devices.eth0.type %}nic{% endif %} {% if "b" in "a,b"|split:"," %}list{% endif %} {% if "Counter" in forloop %}never{% endif %}
