#!/bin/sh
# Answers every request with something that is not a plugin answer.
while IFS= read -r line; do
  echo "this is not json"
done
