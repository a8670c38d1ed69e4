{{ "abc"|make_list|length }} {{ "a b  c"|split:" "|length }} {{ "hello"|slice:"1:3" }} {{ 2|pluralize }} {{ 1|pluralize:"y,ies" }}
