{{ container.name.first }}
