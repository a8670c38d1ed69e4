{% if "" %}e{% endif %}{% if "0" %}s{% endif %}{% if 0 %}z{% endif %}{% if config %}c{% endif %}{% if nosuch %}n{% endif %}{% if not nosuch %}N{% endif %}
