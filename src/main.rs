fn main() -> std::process::ExitCode {
    spark_openstack::cli::main()
}
