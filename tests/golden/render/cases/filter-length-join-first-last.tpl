{{ container.name|length }} {{ "a,b,c"|split:","|join:"+" }} {{ "xyz"|first }}{{ "xyz"|last }} {{ "ab"|join:"-" }}
