[{{ instance.privileged }}] {{ instance.type }}
