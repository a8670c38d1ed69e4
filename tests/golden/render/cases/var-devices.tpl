{{ devices.eth0.parent }} {{ devices.root.pool }} {{ devices.nosuch.x }}
