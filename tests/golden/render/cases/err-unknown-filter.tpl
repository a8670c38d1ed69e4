{{ container.name|shout }}
