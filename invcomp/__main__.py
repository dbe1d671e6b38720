from invcomp.cli import main

main()
