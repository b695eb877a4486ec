//! Network setup through rtnetlink, never by running `ip`.

use rtnetlink::LinkUnspec;

/// Runs one netlink conversation on a runtime of its own, on this thread: the init runs
/// this before it starts the command, and leaves no thread behind.
fn with_netlink<T>(
    work: impl AsyncFnOnce(rtnetlink::Handle) -> Result<T, rtnetlink::Error>,
) -> Result<T, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|error| format!("starting the netlink runtime: {error}"))?;
    runtime.block_on(async {
        let (connection, handle, _) = rtnetlink::new_connection()
            .map_err(|error| format!("opening a netlink socket: {error}"))?;
        let connection = tokio::spawn(connection);
        let result = work(handle).await.map_err(|error| error.to_string());
        connection.abort();
        result
    })
}

/// Sets the link `name` up (`ip link set NAME up`).
pub(crate) fn set_up(name: &str) -> Result<(), String> {
    with_netlink(async |handle| {
        handle
            .link()
            .set(LinkUnspec::new_with_name(name).up().build())
            .execute()
            .await
    })
    .map_err(|error| format!("setting {name} up: {error}"))
}
