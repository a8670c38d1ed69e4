[{{ nosuch }}][{{ nosuch.deeper.still }}]
