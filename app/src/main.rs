use app::{telemetry, Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    telemetry::init(&settings.log)?;
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}
