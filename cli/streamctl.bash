# bash completion for streamctl (installed as
# share/bash-completion/completions/streamctl).  Self-contained: it needs
# bash only, not the bash-completion package's helpers.  Completes the
# commands, their actions and options, files after -f, --token-file and the
# PEM options, and directories nowhere else; ids and names are not fetched
# (that would call the server on every Tab).

_streamctl()
{
    local cur prev word resource="" verb="" i
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    COMPREPLY=()

    case $prev in
        -f|--file|--token-file|--cacert|--cert|--key)
            COMPREPLY=($(compgen -f -- "$cur"))
            return 0 ;;
        --url)
            COMPREPLY=($(compgen -W "http://127.0.0.1:8080 https://" -- "$cur"))
            return 0 ;;
        --connect-timeout|--timeout|--page|--name|--source)
            return 0 ;;
    esac

    # The command and its action: the first two words that are not options
    # or option values (global options may come anywhere).
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        case $word in
            -f|--file|--token-file|--cacert|--cert|--key|--url|--connect-timeout|--timeout|--page|--name|--source)
                ((i++)); continue ;;
            -*) continue ;;
        esac
        if [[ -z $resource ]]; then
            resource=$word
        elif [[ -z $verb ]]; then
            verb=$word
        fi
    done

    local globals="--url --token-file --cacert --cert --key --connect-timeout --timeout --json --help --version"
    if [[ $cur == -* ]]; then
        local extra=""
        case $verb in
            list|errors) extra="--page" ;;
            create) extra="-f --file --source --name" ;;
            update) extra="-f --file" ;;
            validate) extra="-f --file --source" ;;
            load) extra="--name --source --quit-at-eof" ;;
            start|stop) extra="--wait" ;;
        esac
        COMPREPLY=($(compgen -W "$globals $extra" -- "$cur"))
        return 0
    fi

    if [[ -z $resource ]]; then
        COMPREPLY=($(compgen -W "services sources jobs health" -- "$cur"))
    elif [[ -z $verb ]]; then
        case $resource in
            jobs)
                COMPREPLY=($(compgen -W "list get create update delete start stop status offsets errors config validate load" -- "$cur")) ;;
            services|sources)
                COMPREPLY=($(compgen -W "list get create update delete" -- "$cur")) ;;
        esac
    elif [[ $resource == jobs && $verb == load ]]; then
        # jobs load FILE.yaml
        COMPREPLY=($(compgen -f -X '!*.yaml' -- "$cur") $(compgen -f -X '!*.yml' -- "$cur")
                   $(compgen -d -- "$cur"))
    fi
    return 0
}

complete -F _streamctl streamctl
