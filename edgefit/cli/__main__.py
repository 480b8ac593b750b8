from edgefit.cli import main

main()
