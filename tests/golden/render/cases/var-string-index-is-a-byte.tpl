{{ container.name.0 }} {{ container.name.99 }}
