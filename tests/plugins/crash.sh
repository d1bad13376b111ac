#!/bin/sh
# Answers one request, then dies with status 3.
IFS= read -r line
rest=${line#*\"event\":\{\"id\":\"}
printf '{"id":"%s","action":"accept"}\n' "${rest%%\"*}"
exit 3
