#!/bin/sh
# Writes its arguments, so the test sees it ran on the host with them.
echo "args: $*" >> /root/script.txt
touch "/root/script-$1"
