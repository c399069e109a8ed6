//! `modscope replay TRACE`: the proxy answering from a recorded trace instead of the
//! network, until SIGINT/SIGTERM; then hits, misses and unused entries.

use anyhow::{Context, Result};

use super::proxy::serve_until_signal;
use super::session::{Closing, Opening, Session};
use crate::cli::ReplayArgs;

pub async fn replay(args: ReplayArgs) -> Result<i32> {
    let session = Session::open(
        &args.common,
        Opening {
            replay: Some((&args.trace, &args.replay)),
            ..Opening::listen(args.listen, args.allow_remote)
        },
    )?;
    let running = session
        .start()
        .await
        .context("cannot start the replay proxy")?;
    let code = serve_until_signal(running, &session.bundle).await?;
    session.finish(Closing::default()).await?;
    Ok(code)
}
