{% ssi "/etc/shadow" %}
