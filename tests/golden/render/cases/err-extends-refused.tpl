{% extends "base.tpl" %}
