//! `p0-agent-lambda`: the agent as an AWS Lambda function (see `p0_agent::lambda`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    p0_agent::lambda::run().await
}
