//! The corpus: 58 AppSpec files from public repositories (`tests/corpus`, copied byte for byte with
//! its INDEX.md). Each is accepted or refused as the official agent (Server files) or the service
//! (Lambda and ECS files) does; where INDEX.md quotes the refusal's message, the message and its
//! place are checked too. Psych and saphyr number columns the same way (from 1, in characters),
//! so the positions of YAML errors are the ones INDEX.md quotes.

use landfall_appspec::{AppSpec, Os, Platform, parse};

use crate::{files_in, platform_named, read, tests_dir};

enum Expect {
    Accepted,
    /// Refused with a message containing this text, at this line and column.
    RefusedWith(&'static str, usize, usize),
}

use Expect::{Accepted, RefusedWith};

/// One line per corpus file. Server outcomes are the official agent's (INDEX.md); Lambda and ECS
/// ones are the service's as the reference describes it (§6.2, 6.3, 6.5): structure, Type,
/// required properties and typed values are checked, names are not (placeholders only warn).
const EXPECTED: &[(&str, Expect)] = &[
    ("server/001-aws-samples-aws-codedeploy-samples.yml", Accepted), // Windows: refused on a Linux host, see below
    ("server/002-lasuillard-aws-codedeploy-windows.yml", Accepted),
    ("server/003-aws-samples-aws-codedeploy-samples.yml", Accepted), // missing script: fails when run, not parsed
    ("server/004-aws-samples-aws-codedeploy-samples.yml", Accepted),
    ("server/005-harmony-one-harmony.yml", Accepted),
    (
        "server/006-impl-tamaki-lambda.yml",
        RefusedWith("specifies only a source file (.). Add the name of the destination", 4, 5),
    ),
    ("server/007-cdf24-WebAdvert.AdvertApi.yml", Accepted),
    ("server/008-FuzzySmurf-BlazeWolf.yml", Accepted),
    ("server/009-kenny67-server.yml", Accepted), // unknown hook names: warnings
    ("server/010-mcherneski-ec2-event-monitor.yml", Accepted),
    ("server/011-ashnike-bipoflask.yml", Accepted),
    ("server/012-DevopsGoth-mslearn-tailspin-spacegame-web-deploy.yml", Accepted),
    ("server/013-wuqi618-CodeDeployTest.yml", Accepted),
    ("server/014-00005267-API.yml", Accepted),
    ("server/015-00008392-DSCC.CW1.8392.Front-end.Deploy.yml", Accepted),
    (
        "server/016-aws-samples-aws-codedeploy-appspec-assistant.yml",
        RefusedWith("an invalid timeout value was provided for a script", 31, 16),
    ),
    ("server/017-aws-samples-sample-nitro-enclaves-attestation-webapp.yml", Accepted),
    (
        "server/018-ChicagoWorldcon-wellington.yml",
        RefusedWith("The lifecycle event ApplicationStop has no scripts", 80, 3),
    ), // agent: NoMethodError on nil
    ("server/019-cogini-phoenix_container_example.yml", Accepted),
    ("server/020-TableflippersAnonymous-v1x1.yml", Accepted),
    ("server/021-00008392-DSCC.CW1.8392.API.yml", Accepted),
    ("server/022-centfinance-Symmetric.PoolsUI.yml", Accepted),
    (
        "server/023-cmelgreen-PersonalSite.yml",
        RefusedWith("not valid YAML: mapping values are not allowed in this context", 2, 3),
    ),
    ("server/024-RamazanZholdas-APIWithGin.yml", Accepted),
    ("server/025-woowacourse-teams-2025-mul-kkam.yml", Accepted),
    ("server/026-ModusCreateOrg-devops-infra-demo.yml", Accepted),
    ("server/027-openspy-openspy-core.yml", Accepted),
    (
        "server/028-DEKHTIARJonathan-FeedCrunch.IO.yml",
        RefusedWith(
            "an invalid version value (1.1) was entered in the application specification file. Make sure your AppSpec file specifies \"0.0\" as the version",
            1,
            10,
        ),
    ),
    ("server/029-0xradical-respriter.yml", Accepted),
    ("server/030-TomFirth-fomtirth.yml", Accepted), // location is a command: fails when run
    ("server/031-BalaPrethiv01-Blue-green-Deployment-.yml", Accepted), // placeholder users: fail when run
    ("server/032-WPrzybyszewski-10XCards.yml", RefusedWith("an invalid version value () was entered", 1, 1)),
    ("lambda/033-AhmedMElhamy-LambdaRepo.yml", Accepted),
    ("lambda/034-donramanauskas-lambda_codedeploy_demo.yml", Accepted),
    ("lambda/035-YoupKuiper-SimonSaysLambda.yml", Accepted), // same versions: warning
    (
        "lambda/036-Tech-Modernization-aws-graviton2-arm64-lambdas.yml",
        RefusedWith("The CurrentVersion must be a published version number", 17, 25),
    ),
    ("lambda/037-elangovana-lambda-prerender.yml", Accepted),
    ("lambda/038-dexmo007-dexpenses-classify-go.yml", RefusedWith("has no Alias", 3, 5)),
    ("lambda/039-YoonHyunWoo-CodeDeploy_For_Lambda-function.json", Accepted),
    (
        "lambda/040-3rd-stone-AWS-url-shorten-serverless-application-pipeline.yaml",
        RefusedWith("not valid YAML: mapping values are not allowed in this context", 3, 25),
    ),
    (
        "lambda/041-mvpjava-aws-codedeploy-lambda.yml",
        RefusedWith("looks like a template placeholder that was not filled in", 8, 25),
    ),
    ("lambda/042-NChitty-meal-planner.yml", Accepted), // lower-case keys; no version: warning
    ("lambda/043-Opetushallitus-koski-mydata.json", RefusedWith("not valid YAML", 2, 31)),
    (
        "lambda/044-pdelalamo-RecipesGeneration_Lambda.yaml",
        RefusedWith("AWS::Serverless::Function is the SAM template type", 4, 13),
    ),
    ("lambda/045-toluna-terraform-terraform-aws-lambda-pipeline.json", Accepted), // tabs in JSON, as Psych
    ("ecs/046-MostafaSuliman-aws-codedeploy-linear-canary-deployments-blog.yml", Accepted),
    ("ecs/047-AndersenCastanedaUniAndes-devops-fargate.json", Accepted), // version 1: warning
    ("ecs/048-CHADHABT-ponyracer-terraform.json", Accepted),
    ("ecs/049-Jareechang-ecs-nextjs.json", RefusedWith("The ContainerPort must be a port number", 10, 30)),
    ("ecs/050-Andrew-Chen-Wang-cookiecutter-django-ecs-github.yaml", Accepted), // server keys, wildcard ARN: warnings
    ("ecs/051-AppleJuiceAndCookies-eVision-docker.yaml", RefusedWith("The ContainerPort must be a port number", 9, 26)),
    (
        "ecs/052-otunba-ola01-revolucare-wrlylc.yaml",
        RefusedWith("written like the hooks of an EC2/on-premises AppSpec", 25, 3),
    ),
    ("ecs/053-2025-softbank-hackathon-backend.yaml", Accepted), // file name as TaskDefinition: warning
    ("ecs/054-aws-6w8hnx-code-workshop-ecs-lambda-codedeploy.yml", Accepted), // Hooks: null
    ("ecs/055-aws-6w8hnx-code-workshop-ecs-lambda-codedeploy.yml", Accepted),
    (
        "ecs/056-aws-samples-aws-codedeploy-appspec-assistant.json",
        RefusedWith("The TaskDefinition of the ECS service TargetService is empty", 8, 29),
    ),
    ("ecs/057-lopatin-Snaketron.yml", Accepted),
    (
        "ecs/058-JuanDaCalderon-ABCall-backend.json",
        RefusedWith("deploys exactly one resource, but Resources lists 2", 17, 9),
    ),
];

fn platform_of(file: &str) -> Platform {
    let folder = file.split('/').next().unwrap_or_default();
    platform_named(folder).unwrap_or_else(|| panic!("{file}: not in server/, lambda/ or ecs/"))
}

#[test]
fn each_corpus_file_is_accepted_or_refused_as_expected() {
    let mut failures = Vec::new();
    for (file, expect) in EXPECTED {
        let text = read(&tests_dir().join("corpus").join(file));
        let result = parse(&text, platform_of(file));
        match (expect, &result) {
            (Accepted, Ok(_)) => {}
            (Accepted, Err(problems)) => failures.push(format!("{file}: refused, expected accepted:\n{problems}")),
            (RefusedWith(..), Ok(parsed)) => {
                failures.push(format!("{file}: accepted, expected refused; warnings:\n{}", parsed.warnings))
            }
            (RefusedWith(message, line, column), Err(problems)) => {
                let found =
                    problems.errors().any(|d| d.message.contains(message) && d.line == *line && d.column == *column);
                if !found {
                    failures.push(format!(
                        "{file}: no error at {line}:{column} containing {message:?}; found:\n{problems}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every error of a refused file is an error (never only warnings), and accepted files' warnings
/// are only warnings: the split between the two is what decides a deployment.
#[test]
fn refusals_carry_errors_and_acceptances_only_warnings() {
    for (file, _) in EXPECTED {
        let text = read(&tests_dir().join("corpus").join(file));
        match parse(&text, platform_of(file)) {
            Ok(parsed) => assert!(!parsed.warnings.has_errors(), "{file}"),
            Err(problems) => assert!(problems.has_errors(), "{file}"),
        }
    }
}

/// Landfall's agent runs on Linux: the Windows AppSpec files of the corpus parse (they are valid),
/// and a Linux host refuses them with a clear message pointing at `os`.
#[test]
fn windows_appspecs_are_refused_by_a_linux_host() {
    let mut windows = 0;
    for (file, expect) in EXPECTED {
        if !file.starts_with("server/") || !matches!(expect, Accepted) {
            continue;
        }
        let text = read(&tests_dir().join("corpus").join(file));
        let Ok(parsed) = parse(&text, Platform::Server) else { panic!("{file}: refused") };
        let AppSpec::Server(spec) = parsed.appspec else { panic!("{file}: not a Server AppSpec") };
        match spec.os {
            Os::Linux => assert_eq!(spec.check_host_os(Os::Linux), Ok(()), "{file}"),
            Os::Windows => {
                windows += 1;
                let refusal = spec.check_host_os(Os::Linux).expect_err(file);
                assert!(refusal.message.contains("unsupported operating system (windows)"), "{file}: {refusal}");
                assert_eq!(refusal.line, text.lines().position(|l| l.starts_with("os:")).unwrap_or(0) + 1, "{file}");
            }
        }
    }
    assert_eq!(windows, 8, "the corpus has eight Windows AppSpec files");
}

/// The table, the files on disk and INDEX.md name the same 58 files, so that a file added to the
/// corpus must be given its expected outcome here.
#[test]
fn the_table_covers_the_whole_corpus() {
    let corpus = tests_dir().join("corpus");
    let mut on_disk = Vec::new();
    for folder in ["server", "lambda", "ecs"] {
        for path in files_in(&corpus.join(folder)) {
            on_disk.push(format!("{folder}/{}", path.file_name().expect("name").to_string_lossy()));
        }
    }
    let index = read(&corpus.join("INDEX.md"));
    let mut indexed: Vec<String> = index
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_string)
        .collect();
    let mut table: Vec<String> = EXPECTED.iter().map(|(file, _)| file.to_string()).collect();
    on_disk.sort();
    indexed.sort();
    table.sort();
    assert_eq!(on_disk.len(), 58);
    assert_eq!(table, on_disk, "the table and tests/corpus differ");
    assert_eq!(indexed, on_disk, "INDEX.md and tests/corpus differ");
}
