{{ container.name|default: }}
