{{ instance.name }} {{ instance.type }} {{ instance.architecture }} {{ instance.ephemeral }} {{ instance.privileged }}
