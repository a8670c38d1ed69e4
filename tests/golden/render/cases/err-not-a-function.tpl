{{ container.name() }}
