fn main() {
    quiet_the_display_probe();
    std::process::exit(wavelstm::cli::main());
}

/// Mesa's Vulkan device-select layer connects to the display server when an
/// instance is made, to learn which GPU the desktop uses. With no session
/// (a server, a container, CI) that connection fails and libwayland prints
/// "error: XDG_RUNTIME_DIR is invalid or not set in the environment." at
/// every adapter probe: it reads like our own failure, and the demo showed
/// it eight times. We choose the adapter ourselves (`--device`,
/// `--adapter`), so without a session the layer is turned off
/// (`NODEVICE_SELECT`, Mesa's switch for it); in a desktop session, or when
/// the user set the switch, nothing changes. This runs before any thread
/// exists: changing the environment is only sound while nobody reads it.
fn quiet_the_display_probe() {
    let no_session = std::env::var_os("XDG_RUNTIME_DIR").is_none_or(|d| d.is_empty());
    if no_session && std::env::var_os("NODEVICE_SELECT").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}
