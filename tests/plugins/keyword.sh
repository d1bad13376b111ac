#!/bin/sh
# A strfry write-policy plugin in plain POSIX shell: rejects events that
# mention "spam", shadow-rejects those that mention "shadow", accepts the
# rest. Ferry (like strfry) writes the event's id first, so the id is the
# string after `"event":{"id":"`.
while IFS= read -r line; do
  rest=${line#*\"event\":\{\"id\":\"}
  id=${rest%%\"*}
  case $line in
    *spam*) printf '{"id":"%s","action":"reject","msg":"no spam here"}\n' "$id" ;;
    *shadow*) printf '{"id":"%s","action":"shadowReject"}\n' "$id" ;;
    *) printf '{"id":"%s","action":"accept"}\n' "$id" ;;
  esac
done
