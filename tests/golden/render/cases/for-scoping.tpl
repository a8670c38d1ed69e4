{% set x = "outer" %}{% for x in "ab" %}{% set y = x %}{% endfor %}{{ x }}[{{ y }}]
