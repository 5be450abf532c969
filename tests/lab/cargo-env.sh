# Sourced by the scripts that build migready: find cargo where rustup puts it, also when
# run as root without sudo, from `sudo` (whose secure_path drops ~/.cargo/bin), or from
# `env -i` (no HOME, no PATH beyond /usr/bin:/bin).
if ! command -v cargo >/dev/null 2>&1; then
    for _home in "${HOME:-}" "$(getent passwd "$(id -un)" | cut -d: -f6)" ${SUDO_USER:+"$(getent passwd "$SUDO_USER" | cut -d: -f6)"}; do
        if [ -n "$_home" ] && [ -x "$_home/.cargo/bin/cargo" ]; then
            export PATH="$_home/.cargo/bin:$PATH"
            [ -n "${HOME:-}" ] || export HOME="$_home"
            break
        fi
    done
    unset _home
fi
export PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin"
command -v cargo >/dev/null 2>&1 || { echo "cargo not found (install Rust with rustup: ~/.cargo/bin/cargo)" >&2; exit 2; }
