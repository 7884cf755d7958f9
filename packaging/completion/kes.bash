# bash completion for kes: kes itself prints the candidates for COMP_LINE
# (the same mechanism `kes --auto-completion` installs).
complete -o default -C /usr/bin/kes kes
