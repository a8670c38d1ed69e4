{{ -container.name }}
