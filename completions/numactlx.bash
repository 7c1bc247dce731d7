# bash completion for numactlx(8): options, verbs and their options, and values where
# numactlx knows them (nodes, CPUs, device node specifiers, signals, export formats,
# files). After the program's name, the program's own completion takes over.
#
# Install: copy to /usr/share/bash-completion/completions/numactlx (or source it).
# test/ecosystem/completion.test.ts checks these lists against numactlx's own.

_numactlx_launch_opts='--all --balancing --interleave= --weighted-interleave= --preferred=
--preferred-many= --cpubind= --cpunodebind= --physcpubind= --membind= --show --localalloc
--hardware --cpu-compress --version --help --remap= --max-resident= --fault-ahead= --stats= --schedule= --keep=
--config= --snapshot-signal= --snapshot-on-exit'
_numactlx_short_opts='-a -b -i -w -p -P -c -N -C -m -s -l -H -h'
_numactlx_verbs='doctor status ps snapshot snapshots verify export diff rm repair format'

# Options of each verb (--help for all).
_numactlx_verb_opts() {
    case $1 in
        doctor|status|ps|snapshots|verify|diff) echo '--json --help' ;;
        snapshot) echo '--label --wait --json --help' ;;
        export) echo '--format --output --pid --force --help' ;;
        rm|repair) echo '--help' ;;
        format) echo '--size --force --help' ;;
    esac
}

# Node ids of this machine (virtual nodes are the user's to name).
_numactlx_nodes() {
    local d
    for d in /sys/devices/system/node/node[0-9]*; do
        [ -e "$d" ] && echo "${d##*node}"
    done
}

_numactlx_cpus() {
    local d
    for d in /sys/devices/system/cpu/cpu[0-9]*; do
        [ -e "$d" ] && echo "${d##*cpu}"
    done
}

# COMPREPLY for the value of launcher option $1 (the word being completed is $2).
_numactlx_value() {
    local opt=$1 cur=$2
    case $opt in
        --membind|-m|--interleave|-i|--weighted-interleave|-w|--preferred|-p|--preferred-many|-P|--cpunodebind|-N|--cpubind|-c)
            COMPREPLY=($(compgen -W "all same $(_numactlx_nodes) netdev: block: file: ip: pci:" -- "$cur"))
            compopt -o nospace 2>/dev/null
            ;;
        --physcpubind|-C)
            COMPREPLY=($(compgen -W "all $(_numactlx_cpus)" -- "$cur")) ;;
        --stats|--config|--remap)
            COMPREPLY=($(compgen -f -- "$cur")) ;;
        --snapshot-signal)
            COMPREPLY=($(compgen -W "$(kill -l | tr -s ' \t' '\n' | grep '^SIG')" -- "$cur")) ;;
        --fault-ahead)
            COMPREPLY=($(compgen -W '4k 64k 256k 1m 2m' -- "$cur")) ;;
        --keep|--schedule)
            COMPREPLY=() ;;
    esac
}

# A launcher option that takes its value in the next word.
_numactlx_takes_value() {
    case $1 in
        -m|-i|-w|-p|-P|-c|-N|-C|--membind|--interleave|--weighted-interleave|--preferred|--preferred-many|--cpubind|--cpunodebind|--physcpubind|--remap|--max-resident|--fault-ahead|--stats|--schedule|--keep|--config|--snapshot-signal) return 0 ;;
    esac
    return 1
}

_numactlx() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    COMPREPLY=()

    # --opt=value: bash splits the word at '=' (COMP_WORDBREAKS).
    if [ "$cur" = '=' ]; then
        _numactlx_value "$prev" ''
        return 0
    fi
    if [ "$prev" = '=' ] && [ "$COMP_CWORD" -ge 2 ]; then
        _numactlx_value "${COMP_WORDS[COMP_CWORD-2]}" "$cur"
        return 0
    fi
    # netdev:DEV, block:DEV (the word is split at ':' too).
    if [ "$prev" = ':' ] || [ "$cur" = ':' ]; then
        local kind=${COMP_WORDS[COMP_CWORD-1]}
        [ "$cur" = ':' ] && cur='' || kind=${COMP_WORDS[COMP_CWORD-2]}
        case $kind in
            netdev) COMPREPLY=($(compgen -W "$(ls /sys/class/net 2>/dev/null)" -- "$cur")) ;;
            block) COMPREPLY=($(compgen -W "$(ls /sys/class/block 2>/dev/null)" -- "$cur")) ;;
            file) COMPREPLY=($(compgen -f -- "$cur")) ;;
        esac
        return 0
    fi

    # A verb: its options, then files (backings, outputs).
    local verb=${COMP_WORDS[1]}
    if [ "$COMP_CWORD" -gt 1 ] && [[ " $_numactlx_verbs " == *" $verb "* ]]; then
        case $prev in
            --format) COMPREPLY=($(compgen -W 'core raw' -- "$cur")); return 0 ;;
            -o|--output) COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
            --label|--pid) return 0 ;;
        esac
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$(_numactlx_verb_opts "$verb")" -- "$cur"))
        else
            COMPREPLY=($(compgen -f -- "$cur"))
        fi
        return 0
    fi

    # The launcher: options until the program's name (or --), then the program's words.
    local i=1 word
    while [ "$i" -lt "$COMP_CWORD" ]; do
        word=${COMP_WORDS[i]}
        if [ "$word" = '--' ]; then
            i=$((i + 1)); break
        elif [ "${COMP_WORDS[i+1]}" = '=' ]; then
            i=$((i + 3))                      # --opt = value
        elif _numactlx_takes_value "$word"; then
            i=$((i + 2))                      # --opt value, -m value
        elif [[ $word == -* ]]; then
            i=$((i + 1))
        else
            break                             # the program's name
        fi
    done
    if [ "$i" -lt "$COMP_CWORD" ]; then
        # Past the program's name: the program's completion, when bash-completion is loaded.
        if declare -F _command_offset >/dev/null; then
            _command_offset "$i"
        else
            COMPREPLY=($(compgen -f -- "$cur"))
        fi
        return 0
    fi
    if [ "$i" -eq "$COMP_CWORD" ] && [ "$i" -gt 1 ] && [ "${COMP_WORDS[i-1]}" = '--' ]; then
        COMPREPLY=($(compgen -c -- "$cur" | sort -u))
        return 0
    fi
    if _numactlx_takes_value "$prev"; then
        _numactlx_value "$prev" "$cur"
        return 0
    fi
    case $cur in
        --*)
            COMPREPLY=($(compgen -W "$_numactlx_launch_opts" -- "$cur"))
            [[ ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
            ;;
        -*) COMPREPLY=($(compgen -W "$_numactlx_short_opts --" -- "$cur")) ;;
        *)
            if [ "$COMP_CWORD" -eq 1 ]; then
                COMPREPLY=($(compgen -W "$_numactlx_verbs" -- "$cur") $(compgen -c -- "$cur" | sort -u))
            else
                COMPREPLY=($(compgen -c -- "$cur" | sort -u))
            fi
            ;;
    esac
    return 0
}

complete -F _numactlx numactlx
