from ganzoo_export.cli import main

main()
