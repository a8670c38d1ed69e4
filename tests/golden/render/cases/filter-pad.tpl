[{{ "ab"|center:6 }}][{{ "ab"|ljust:4 }}][{{ "ab"|rjust:4 }}][{{ "ab"|rjust:-4 }}]
