/**
 * `helm-lock lock-completion bash|zsh|fish`: each script only asks `helm-lock __complete`
 * (`complete.ts`), so the three shells complete the same words.
 *
 * @module
 */

import { LOCK_COMPLETION } from "./help.ts";
import { type CommandIO, ownArgs } from "./own_args.ts";

// Directives (complete.ts): 1 error, 2 no space after the word, 4 no file names.
const SCRIPTS = {
  bash: `# bash completion of helm-lock: source <(helm-lock lock-completion bash)
_helm_lock() {
  local cur words cword out line directive
  if declare -F _get_comp_words_by_ref >/dev/null 2>&1; then
    _get_comp_words_by_ref -n =: cur words cword
  else
    cur=\${COMP_WORDS[COMP_CWORD]} words=("\${COMP_WORDS[@]}") cword=$COMP_CWORD
  fi
  out=$("\${words[0]}" __complete "\${words[@]:1:cword-1}" "$cur" 2>/dev/null) || return
  directive=\${out##*:}
  COMPREPLY=()
  while IFS= read -r line; do
    case $line in :* | '') ;; *) COMPREPLY+=("\${line%%$'\\t'*}") ;; esac
  done <<<"$out"
  if (( directive & 1 )); then COMPREPLY=(); return; fi
  if (( directive & 2 )); then compopt -o nospace; fi
  if (( \${#COMPREPLY[@]} == 0 && !(directive & 4) )); then compopt -o default; fi
  if declare -F __ltrim_colon_completions >/dev/null 2>&1; then __ltrim_colon_completions "$cur"; fi
}
complete -F _helm_lock helm-lock
`,
  zsh: `#compdef helm-lock
# zsh completion of helm-lock: source <(helm-lock lock-completion zsh)
_helm_lock() {
  local out line directive
  local -a lines items
  out=$("\${words[1]}" __complete "\${(@)words[2,CURRENT-1]}" "\${words[CURRENT]}" 2>/dev/null) || return
  lines=("\${(@f)out}")
  directive=\${lines[-1]#:}
  for line in "\${(@)lines[1,-2]}"; do
    [[ -n $line ]] || continue
    if [[ $line == *$'\\t'* ]]; then
      items+=("\${\${line%%$'\\t'*}//:/\\\\:}:\${line#*$'\\t'}")
    else
      items+=("\${line//:/\\\\:}")
    fi
  done
  (( directive & 1 )) && return 1
  if (( \${#items} )); then
    if (( directive & 2 )); then _describe helm-lock items -S ''; else _describe helm-lock items; fi
  elif (( !(directive & 4) )); then
    _files
  fi
}
compdef _helm_lock helm-lock
`,
  fish: `# fish completion of helm-lock: helm-lock lock-completion fish | source
function __helm_lock_complete
    set -l words (commandline -opc)
    set -l out ($words[1] __complete $words[2..-1] (commandline -ct) 2>/dev/null)
    or return
    set -l directive (string replace ':' '' -- $out[-1])
    test (math "bitand($directive, 1)") -eq 0; or return
    for line in $out[1..-2]
        echo $line
    end
    if test (count $out) -le 1; and test (math "bitand($directive, 4)") -eq 0
        __fish_complete_path (commandline -ct)
    end
end
complete -c helm-lock -f -a '(__helm_lock_complete)'
`,
} as const;

/**
 * Runs `lock-completion` with the words after its name: 0 when the script was printed.
 *
 * @throws {HelmLockError} With {@linkcode ExitCode.Usage} for a shell it has no script for.
 */
export function lockCompletion(argv: string[], io: CommandIO): Promise<number> {
  const args = ownArgs(argv, LOCK_COMPLETION, io);
  if (args) {
    const [shell = "", extra] = args.positionals;
    if (extra !== undefined || !Object.hasOwn(SCRIPTS, shell)) throw args.misused("one shell");
    io.print(SCRIPTS[shell as keyof typeof SCRIPTS].trimEnd());
  }
  return Promise.resolve(0);
}
