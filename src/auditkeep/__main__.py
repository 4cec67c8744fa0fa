from auditkeep.cli.main import main

main()
