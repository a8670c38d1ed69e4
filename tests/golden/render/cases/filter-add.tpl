{{ 1|add:2 }} {{ "1"|add:2 }} {{ 1.5|add:2 }} {{ container.name|add:"-x" }}
