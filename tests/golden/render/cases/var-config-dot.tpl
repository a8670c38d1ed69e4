{{ config.limits.cpu }}|{{ config.nosuch }}|
