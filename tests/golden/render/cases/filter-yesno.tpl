{{ true|yesno }} {{ false|yesno:"on,off" }} {{ nosuch|yesno:"a,b,c" }} {{ nosuch|yesno }}
