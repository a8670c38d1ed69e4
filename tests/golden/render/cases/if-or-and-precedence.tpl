{% if false and false or true %}A{% endif %}{% if true or false and false %}B{% endif %}
